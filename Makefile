# mmfer: `make demo` and `make test` work on a fresh machine with Python 3.11
# and pip; everything else is installed into .venv.
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip
STAMP := $(VENV)/.mmfer-installed
TEST_STAMP := $(VENV)/.mmfer-tests-installed

.PHONY: install demo test clean

install: $(STAMP)

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

$(TEST_STAMP): $(STAMP) requirements/tests.txt
	$(PIP) install -r requirements/tests.txt
	@# grad-cam requires opencv-python-headless, which would shadow our
	@# opencv-python (its other requirements are in tests.txt);
	@# facenet-pytorch pins torch<2.3 and numpy<2, and only its MTCNN weight
	@# files are used (by mmfer's own MTCNN).
	$(PIP) install --no-deps "grad-cam>=1.5,<1.6" "facenet-pytorch==2.6.0"
	touch $@

demo: $(STAMP)
	$(VPY) tools/demo.py

test: $(TEST_STAMP)
	$(VPY) -m pytest tests -q -p no:cacheprovider --timeout 1200

clean:
	rm -rf $(VENV) build *.egg-info
