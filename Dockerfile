# The users API under gunicorn, exactly as the Procfile runs it. Build: docker build -t userservice .
FROM python:3.11-slim-bookworm

# The image holds no emulator (fakesnow is a development dependency), so it defaults to
# production: it refuses to start, naming what is missing, until Snowflake is configured.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ENVIRONMENT=production \
    HOST=0.0.0.0 \
    PORT=8000

# A home the app user may write: gunicorn 27 opens its control socket in ~/.gunicorn/.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --shell /usr/sbin/nologin app

WORKDIR /app

# Production pins only: the emulator, test and lint tools stay out of the image.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY userservice/ userservice/
COPY sql/ sql/
COPY wsgi.py gunicorn.conf.py ./
# Compile once at build time: the app's files are root-owned and read-only to the app user.
RUN python -m compileall -q userservice wsgi.py gunicorn.conf.py

# Numeric, so the runtime can tell it is not root without reading the image's passwd file.
USER 10001:10001

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health' % os.environ['PORT'], timeout=2)"]

CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
