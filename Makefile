# Slipstream developer tasks. GNU make, POSIX sh.
#
#   make demo       start the serverless stack on moto, deploy dags/, run one DAG, print its tasks
#   make test       ruff + mypy (chalicelib/core) + pytest
#   make lint | typecheck | bench | schemathesis | clean | distclean
#   make deploy STAGE=dev   infra stack, wire the stage, functions, dags/, health check
#   make destroy STAGE=dev  remove the stage's stacks (what is marked Retain stays)
#
# Every target creates $(VENV) on first use; the stamp file makes later runs
# skip the install until a requirements file or pyproject.toml changes.

SHELL := /bin/sh
.DEFAULT_GOAL := help

PYTHON ?= python3
PIP_VERSION ?= 26.2.1
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The machine has 2 cores; more xdist workers only add start-up time. --dist loadgroup
# keeps each xdist_group on one worker: tests/conftest.py puts each module in a group of
# its own (module-scoped stacks), and the browser tests share one served stack, in order.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=

DEMO_DAG_ID ?= etl_hourly

# Deployment (docs/deploying.md). Needs the AWS CLI and credentials for the account.
STAGE ?= dev
INFRA_STACK ?= slipstream-$(STAGE)-infra
APP_STACK ?= slipstream-$(STAGE)
# e.g. INFRA_PARAMS="WorkerSubnets=subnet-1,subnet-2 WorkerSecurityGroups=sg-1 WorkerImage=..."
INFRA_PARAMS ?=
BUILD_DIR := build/$(STAGE)
CLI := $(BIN)/python -m chalicelib.cli
STACK_OUTPUT = aws cloudformation describe-stacks --stack-name $(1) --output text \
	--query "Stacks[0].Outputs[?OutputKey=='$(2)'].OutputValue"

.PHONY: help install demo test lint typecheck pytest bench chaos schemathesis screenshots clean distclean \
	deploy destroy plan-deploy plan-destroy lint-infra worker-image

help:
	@echo "make demo       run $(DEMO_DAG_ID) on the local serverless stack (moto), print its tasks"
	@echo "make test       ruff, mypy on chalicelib/core, pytest -n $(PYTEST_WORKERS)"
	@echo "make lint       ruff check ."
	@echo "make typecheck  mypy chalicelib/core"
	@echo "make bench      bench/local_test.py and bench/scheduler_cost.py"
	@echo "make chaos      200 seeded runs on the local stack under injected AWS faults and killed workers"
	@echo "make schemathesis  fuzz the served API against its OpenAPI document (no 5xx, answers match)"
	@echo "make screenshots  run the browser tests and save each UI view into docs/images/"
	@echo "make deploy STAGE=dev   deploy a stage to the AWS account of your credentials"
	@echo "make worker-image STAGE=dev  build and push the ECS worker image"
	@echo "make destroy STAGE=dev  delete a stage's stacks (tables, bucket, queues, task logs stay)"
	@echo "make lint-infra cfn-lint infra/stack.yaml"
	@echo "make clean      remove caches and build leftovers (keeps $(VENV))"
	@echo "make distclean  clean, and remove $(VENV)"

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q pip==$(PIP_VERSION)  # chalice 1.34 needs pip < 26.3
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q -e . --no-deps
	touch $@

demo: $(STAMP)
	$(BIN)/slipstream dev demo $(DEMO_DAG_ID) --project .

# Make stops at the first failing recipe line, so `make test` fails if any step does.
test: lint lint-infra typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .

# The packaged (SAM) template is linted by tests/deploy/stage (it packages a wired stage).
lint-infra: $(STAMP)
	$(BIN)/cfn-lint infra/stack.yaml

typecheck: $(STAMP)
	$(BIN)/mypy chalicelib/core

pytest: $(STAMP)
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup --durations=25 $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/local_test.py
	$(BIN)/python bench/scheduler_cost.py

# The full chaos suite (tests/chaos/harness.py); a 30-run variant is part of `make pytest`.
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos.harness --runs 200

# Needs Debian's chromium and chromium-driver (.ci/run installs them).
screenshots: $(STAMP)
	SLIPSTREAM_SCREENSHOTS=docs $(BIN)/pytest -q -n 0 tests/ui/test_browser.py

# The fuzzing module alone, with its summary line (-s); it is also part of `make pytest`.
schemathesis: $(STAMP)
	$(BIN)/pytest -q -n 0 -s tests/api/test_schemathesis.py

plan-deploy:
	@echo "make deploy STAGE=$(STAGE) will, in the account and region of your credentials:"
	@echo "  1. deploy stack $(INFRA_STACK) from infra/stack.yaml (tables, bucket, queues, bus, cluster, roles)"
	@echo "  2. wire stage $(STAGE) from its outputs into .chalice/ (config.json, policy-$(STAGE)-*.json, merge-$(STAGE).json)"
	@echo "  3. chalice package --stage $(STAGE) into $(BUILD_DIR), upload the code to the stage's bucket"
	@echo "  4. deploy stack $(APP_STACK) (the four functions, their roles, the REST API)"
	@echo "  5. deploy dags/ to the stage, then GET /api/v2/monitor/health"

deploy: $(STAMP)
	@$(CLI) stage preflight --stage $(STAGE)
	@$(MAKE) --no-print-directory plan-deploy
	aws cloudformation deploy --stack-name $(INFRA_STACK) --template-file infra/stack.yaml \
		--capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
		--parameter-overrides Stage=$(STAGE) $(INFRA_PARAMS)
	$(CLI) stage wire --stage $(STAGE) --from-stack $(INFRA_STACK)
	rm -rf $(BUILD_DIR)
	eval "$$($(CLI) stage env --stage $(STAGE))" && \
		$(BIN)/chalice package --stage $(STAGE) --merge-template .chalice/merge-$(STAGE).json $(BUILD_DIR)
	aws cloudformation package --template-file $(BUILD_DIR)/sam.json \
		--s3-bucket "$$($(call STACK_OUTPUT,$(INFRA_STACK),StateBucketName))" \
		--s3-prefix lambda/$(STAGE) --output-template-file $(BUILD_DIR)/packaged.yaml
	aws cloudformation deploy --stack-name $(APP_STACK) --template-file $(BUILD_DIR)/packaged.yaml \
		--capabilities CAPABILITY_NAMED_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset
	eval "$$($(CLI) stage env --stage $(STAGE))" && $(BIN)/slipstream dags deploy . --stage $(STAGE)
	curl -fsS "$$($(call STACK_OUTPUT,$(APP_STACK),EndpointURL))api/v2/monitor/health" && echo

# Build infra/worker.Dockerfile, push it to the stage's ECR repository tagged with the
# git commit, and set the stack's WorkerImage (the task definition); prints the steps first.
worker-image: $(STAMP)
	$(BIN)/python -m chalicelib.deploy.worker_image --stage $(STAGE) --stack $(INFRA_STACK)

plan-destroy:
	@echo "make destroy STAGE=$(STAGE) will delete stack $(APP_STACK), then stack $(INFRA_STACK)."
	@echo "  Kept (DeletionPolicy Retain): the tables, the state bucket, both queues, the task log group."

destroy: $(STAMP)
	@$(CLI) stage preflight --stage $(STAGE)
	@$(MAKE) --no-print-directory plan-destroy
	aws cloudformation delete-stack --stack-name $(APP_STACK)
	aws cloudformation wait stack-delete-complete --stack-name $(APP_STACK)
	aws cloudformation delete-stack --stack-name $(INFRA_STACK)
	aws cloudformation wait stack-delete-complete --stack-name $(INFRA_STACK)

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
