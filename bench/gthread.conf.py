"""No settings: the gthread reference run must not read gunicorn.conf.py (it patches for gevent)."""
