# The two commands a newcomer needs: `make run` and `make test`. Both set up .venv first.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint typecheck init-db verify-snowflake clean docs-assets lambda-zip bench token image-base

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)  ## Serve the API on http://127.0.0.1:8000 (embedded emulator unless configured)
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# The same command as `flask --app userservice dev-token`, without building the app: it works
# while `make run` holds the emulator's files. `make -s token SCOPE=users:read` for one scope;
# ARGS="--expires-in 300 --subject ada" for the command's other options.
token: $(STAMP)  ## Print a development token (serve it with AUTH_ISSUER=dev make run)
	@$(BIN)/python -c 'from userservice.auth import dev_token_command; dev_token_command()' \
		$(if $(SCOPE),--scope $(SCOPE)) $(ARGS)

# The browser test drives Debian's Chromium (no browser download); install it when missing.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && apt-get install -y -qq chromium

# The image test builds the Dockerfile with Debian's podman and buildah (no Docker engine or
# registry needed) on a base made from Debian's packages with debootstrap; install them when
# missing. The base is cached outside the repository (IMAGE_BASE_CACHE), keyed by its recipe.
PODMAN := /usr/bin/podman
IMAGE_BASE_CACHE ?= /var/cache/userservice-base
$(PODMAN):
	apt-get update -qq && apt-get install -y -qq podman buildah debootstrap

image-base: $(PODMAN)  ## Make the local stand-in for the Dockerfile's FROM image (cached)
	scripts/image_base.sh $(IMAGE_BASE_CACHE)

test: $(STAMP) $(CHROMIUM) $(PODMAN)  ## Lint, type-check and run the whole suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/sqlfluff lint sql/
	$(BIN)/hadolint Dockerfile
	$(BIN)/pytest

# The tests that start no servers, on both cores (pytest-xdist; each worker has its own
# tmp folders, emulator files and ports): under a minute (docs/DEVELOPMENT.md).
test-fast: $(STAMP)  ## Run the fast tier (pytest -m "not slow") on two workers
	$(BIN)/pytest -m "not slow" -n 2 --dist worksteal -q

# Benchmarks, not tests: figures go to docs/PERFORMANCE.md and build/bench-*.md (~20 minutes).
bench: $(STAMP)  ## Measure the stack, the pool, Lambda's cold start, faults, slow clients, auth, tracing and hostile input
	$(BIN)/python -m bench.run
	mkdir -p build
	$(BIN)/python -m bench.lambda_cold_start | tee build/bench-lambda-cold-start.md
	$(BIN)/python -m bench.faults | tee build/bench-faults.md
	$(BIN)/python -m bench.capacity | tee build/bench-capacity.md
	$(BIN)/python -m bench.slow_clients | tee build/bench-slow-clients.md
	$(BIN)/python -m bench.auth_cost | tee build/bench-auth-cost.md
	$(BIN)/python -m bench.trace_cost | tee build/bench-trace-cost.md
	$(BIN)/python -m bench.hostile | tee build/bench-hostile.md

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint sql/
	$(BIN)/hadolint Dockerfile
	$(BIN)/cfn-lint template.yaml

typecheck: $(STAMP)
	$(BIN)/mypy

init-db: $(STAMP)  ## Create the table and sequence on the configured Snowflake account
	$(BIN)/flask --app userservice init-db

# Needs a role that may create schemas in SNOWFLAKE_DATABASE (see docs/SNOWFLAKE.md); the service's own
# role may not. Scratch schemas USERSERVICE_VERIFY_* are created and dropped.
verify-snowflake: $(STAMP)  ## Prove the SQL and the write rules on the configured Snowflake account
	PYTHONPATH=. $(BIN)/python scripts/verify_snowflake.py

# AWS Lambda: python3.12 on arm64 (ARCH=x86_64 for the other; then change template.yaml's
# Architectures too). LAMBDA_INTERPRETER names a Python 3.12 for the .pyc when none is on PATH.
ARCH ?= arm64
LAMBDA_PYTHON ?= 3.12
LAMBDA_INTERPRETER ?=
LAMBDA_ZIP ?= build/lambda.zip
lambda-zip: $(STAMP)  ## Build build/lambda.zip for AWS Lambda (see docs/DEPLOY.md)
	$(BIN)/python scripts/build_lambda_zip.py --arch $(ARCH) --python $(LAMBDA_PYTHON) \
		--out $(LAMBDA_ZIP) $(if $(LAMBDA_INTERPRETER),--interpreter $(LAMBDA_INTERPRETER))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build/lambda build/lambda.zip

SWAGGER_UI_VERSION := 5.35.0
REDOC_VERSION := 2.5.4
docs-assets:  ## Re-vendor Swagger UI and ReDoc from the npm registry
	rm -rf build/assets && mkdir -p build/assets
	cd build/assets && npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) redoc@$(REDOC_VERSION)
	cd build/assets && tar xzf swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz && mv package swagger \
		&& tar xzf redoc-$(REDOC_VERSION).tgz && mv package redoc
	cp build/assets/swagger/{swagger-ui-bundle.js,swagger-ui-standalone-preset.js,swagger-ui.css,LICENSE,NOTICE} \
		userservice/static/swagger-ui/
	cp build/assets/redoc/bundles/redoc.standalone.js build/assets/redoc/LICENSE userservice/static/redoc/
	sed -i 's|^//# sourceMappingURL=.*$$||' userservice/static/*/*.js
