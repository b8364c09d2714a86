# geotool: `make demo` and `make test` are the two commands a new user needs.
# Both create the virtual environment when it is missing and install geotool into it.
# VENV can point outside the clone (CI reuses one): make test VENV=/path/to/venv

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO_OUT ?= demo_output
PYTEST_ARGS ?=

.PHONY: install demo test wheel-check bench clean help

help:
	@echo "make demo   - set up, then run the main jobs on data_samples/ into $(DEMO_OUT)/"
	@echo "make test   - set up, then run the whole test suite"
	@echo "make wheel-check - build the wheel, install it non-editable elsewhere, run each command family"
	@echo "make bench  - run the benchmark scripts in bench/ (slow; see BENCHMARKS.md)"
	@echo "VENV=$(VENV) (override to reuse an environment elsewhere)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Full install when pyproject.toml changed since the last one; otherwise only make sure the editable
# install points at this checkout (a reused VENV may have been installed from another clone). The check
# runs from / so that the checkout itself on sys.path cannot hide an install that points elsewhere.
$(VENV)/.geotool-deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.geotool-deps
	@(cd / && $(abspath $(BIN))/python -c "import geotool, pathlib, sys; sys.exit(pathlib.Path(geotool.__file__).resolve().parent != pathlib.Path('$(CURDIR)/geotool').resolve())") 2>/dev/null \
		|| $(BIN)/python -m pip install --quiet --no-deps -e .

# --dist loadfile: a file's tests run on one worker, so a fixture that trains a model for a file's tests
# (session-scoped) is built once, not once per worker. --no-loadscope-reorder: files are handed out in the
# order tests/conftest.py gives them (the longest first), not by their number of tests.
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder -q $(PYTEST_ARGS)

wheel-check: install
	PYTHON=$(BIN)/python bash .ci/wheel-check

bench: install
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(DEMO_OUT) .pytest_cache build *.egg-info

# ---- demo: each command on data_samples/, outputs and PNG previews in $(DEMO_OUT)/ -------------
GEOTOOL := $(BIN)/geotool

demo: install demo-soil demo-oba demo-nir demo-segmentation
	@echo "demo outputs and PNG previews are in $(DEMO_OUT)/"

# soil-sample (maxvol and cLHS) and soil-evaluate on the Kshen field, with PNG maps and chart
SOIL := data_samples/soil
demo-soil: install
	@mkdir -p $(DEMO_OUT)/soil
	$(GEOTOOL) soil-sample $(SOIL)/slope.tif $(SOIL)/ndvi.tif --resample bilinear --dem $(SOIL)/dem.tif \
		--terrain aspect,curvature,twi -n 20 --min-distance 40 --seed 0 \
		--output $(DEMO_OUT)/soil/points_maxvol.gpkg --plot $(DEMO_OUT)/soil/points_maxvol.png
	$(GEOTOOL) soil-sample $(SOIL)/slope.tif $(SOIL)/ndvi.tif --resample bilinear --dem $(SOIL)/dem.tif \
		--terrain aspect,curvature,twi -n 20 --min-distance 40 --method clhs --seed 0 \
		--output $(DEMO_OUT)/soil/points_clhs.csv --plot $(DEMO_OUT)/soil/points_clhs.png
	$(GEOTOOL) soil-evaluate $(SOIL)/kshen_data.csv --x-column LON --y-column LAT --crs EPSG:32637 \
		--covariate $(SOIL)/dem.tif --covariate $(SOIL)/slope.tif --covariate $(SOIL)/aspect.tif \
		--covariate $(SOIL)/wetnessindex.tif -k 10,15,20,25,30 --repeats 20 --seed 0 \
		--output $(DEMO_OUT)/soil/kshen_evaluation.csv
	@echo "soil maps and evaluation chart: $(DEMO_OUT)/soil/*.png"

demo-oba: install
	@mkdir -p $(DEMO_OUT)/oba
	$(GEOTOOL) --quiet oba-augment --images data_samples/buildings/SN7_mosaic_clipped.tif \
		--labels data_samples/buildings/SN7_buildings.geojson --bands 1,2,3 --scene-size 128 -n 8 \
		--shadows --sun-azimuth 135 --sun-elevation 50 --seed 0 --output $(DEMO_OUT)/oba/buildings
	$(GEOTOOL) --quiet oba-augment --images data_samples/forest/nb_23322E759967N_clipped_1m_1of2.tif \
		--labels data_samples/forest/nb_BakerLake_2017_clipped.gpkg --class-attribute Niveau_3 \
		--paste-classes Building --max-label-fraction 0.5 --scene-size 128 -n 8 --seed 0 \
		--output $(DEMO_OUT)/oba/nb_buildings
	@echo "OBA contact sheets: $(DEMO_OUT)/oba/*/contact_sheet.png"

# --norm batch: 120 steps on 64-px windows train faster with batch than with instance normalisation, the
# default for full runs (east MAE 0.056 vs 0.083 on this crop, measured with SSIM weight 30; now 0.058; BENCHMARKS.md).
demo-nir: install
	@mkdir -p $(DEMO_OUT)/nir
	$(GEOTOOL) --quiet train-nir data_samples/nir/naip_20090818_crop.tif --rgb-bands 1,2,3 --nir-band 4 \
		--window 64 --depth 5 --ngf 16 --ndf 16 --norm batch --batch-size 8 --max-steps 120 --steps-per-epoch 40 --lr 0.001 \
		--threads 1 --seed 0 --output $(DEMO_OUT)/nir/run
	$(GEOTOOL) --quiet generate-nir $(DEMO_OUT)/nir/run/model.ckpt data_samples/nir/naip_20090818_crop.tif \
		--ndvi --threads 1 --output $(DEMO_OUT)/nir/naip_20090818_nir.tif
	$(GEOTOOL) evaluate-nir $(DEMO_OUT)/nir/naip_20090818_nir.tif data_samples/nir/naip_20090818_crop.tif \
		--nir-band 4 --region east --baseline linear,gb --plot $(DEMO_OUT)/nir/comparison.png \
		--output $(DEMO_OUT)/nir/metrics_east.json
	@echo "NIR previews: $(DEMO_OUT)/nir/run/previews/*.png, comparison: $(DEMO_OUT)/nir/comparison.png"

demo-segmentation: install
	@mkdir -p $(DEMO_OUT)/segmentation
	$(GEOTOOL) --quiet train-segmentation --task buildings --images data_samples/buildings/SN7_mosaic_clipped.tif \
		--labels data_samples/buildings/SN7_buildings.geojson --bands 1,2,3 --window 128 --batch-size 8 --max-steps 60 \
		--steps-per-epoch 20 --oba oba --threads 1 --seed 0 --output $(DEMO_OUT)/segmentation/run
	$(GEOTOOL) --quiet predict $(DEMO_OUT)/segmentation/run/model.ckpt data_samples/buildings/SN7_mosaic_clipped.tif \
		--probabilities --min-area 20 --polygons $(DEMO_OUT)/segmentation/buildings.gpkg --threads 1 \
		--output $(DEMO_OUT)/segmentation/pred
	$(GEOTOOL) evaluate $(DEMO_OUT)/segmentation/pred/SN7_mosaic_clipped_classes.tif \
		data_samples/buildings/SN7_buildings.geojson --output $(DEMO_OUT)/segmentation/metrics.json
	@echo "Segmentation PNGs: $(DEMO_OUT)/segmentation/run/training_curves.png, run/previews/*.png, pred/*_preview.png"
