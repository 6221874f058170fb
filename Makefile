# mmfer: `make demo` and `make test` work on a fresh machine with Python 3.11
# and pip; everything else is installed into .venv.
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip
STAMP := $(VENV)/.mmfer-installed
EXTRAS_STAMP := $(VENV)/.mmfer-extras-installed
TEST_STAMP := $(VENV)/.mmfer-tests-installed

.PHONY: install extras demo test clean

install: $(STAMP)

# The optional features (ONNX, face detectors, Grad-CAM, TensorBoard); the
# tests exercise them all.
extras: $(EXTRAS_STAMP)

$(VPY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(VPY) setup.py requirements.txt requirements/runtime.txt requirements/mminstall.txt
	$(PIP) install --upgrade setuptools wheel
	$(PIP) install -r requirements/runtime.txt
	@# A full mmcv (with ops) already present is kept: mmcv-lite would
	@# overwrite the same `mmcv` package.
	$(VPY) -c "import mmcv" 2>/dev/null || $(PIP) install -r requirements/mminstall.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	$(VPY) -c "import mmfer; print('mmfer', mmfer.__version__, 'installed')"
	touch $@

$(EXTRAS_STAMP): $(STAMP) requirements/optional.txt requirements/nodeps.txt
	$(PIP) install -r requirements/optional.txt
	$(PIP) install --no-deps -r requirements/nodeps.txt
	touch $@

$(TEST_STAMP): $(EXTRAS_STAMP) requirements/tests.txt
	$(PIP) install -r requirements/tests.txt
	touch $@

demo: $(STAMP)
	$(VPY) tools/demo.py

test: $(TEST_STAMP)
	$(VPY) -m pytest tests -q -p no:cacheprovider --timeout 1200

clean:
	rm -rf $(VENV) build *.egg-info
