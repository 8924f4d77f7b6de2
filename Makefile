# The two commands a newcomer needs: `make run` and `make test`. Both set up .venv first.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck init-db verify-snowflake clean docs-assets lambda-zip bench token

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

test: $(STAMP) $(CHROMIUM)  ## Lint, type-check and run the whole suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/sqlfluff lint sql/
	$(BIN)/hadolint Dockerfile
	$(BIN)/pytest

# Benchmarks, not tests: figures go to docs/PERFORMANCE.md and build/bench-*.md (~20 minutes).
bench: $(STAMP)  ## Measure the stack, the pool, Lambda's cold start, faults, slow clients, auth, tracing
	$(BIN)/python -m bench.run
	mkdir -p build
	$(BIN)/python -m bench.lambda_cold_start | tee build/bench-lambda-cold-start.md
	$(BIN)/python -m bench.faults | tee build/bench-faults.md
	$(BIN)/python -m bench.capacity | tee build/bench-capacity.md
	$(BIN)/python -m bench.slow_clients | tee build/bench-slow-clients.md
	$(BIN)/python -m bench.auth_cost | tee build/bench-auth-cost.md
	$(BIN)/python -m bench.trace_cost | tee build/bench-trace-cost.md

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
LAMBDA_PYTHON := 3.12
LAMBDA_INTERPRETER ?=
lambda-zip: $(STAMP)  ## Build build/lambda.zip for AWS Lambda (see docs/DEPLOY.md)
	$(BIN)/python scripts/build_lambda_zip.py --arch $(ARCH) --python $(LAMBDA_PYTHON) \
		--out build/lambda.zip $(if $(LAMBDA_INTERPRETER),--interpreter $(LAMBDA_INTERPRETER))

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
