"""The web page: python app.py [--host 127.0.0.1] [--port 7860] [--jobs DIR] [KEY=VALUE ...] (see --help)"""

from vsr.apps.web import cli

if __name__ == "__main__":
    cli()
