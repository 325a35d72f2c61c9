# Tasks for working on vibetuner itself. `just --list` shows them.

# Install vibetuner with everything the tests and tools need, at the versions CI tests.
install:
    python -m pip install -c constraints.txt -e ".[test]"

# Rebuild constraints.txt (the versions CI installs) from today's releases, in a fresh venv.
constraints:
    bash scripts/update-constraints.sh

# Run the test suite on the newest releases of every dependency (a fresh venv).
test-newest *args:
    bash scripts/test-newest.sh {{args}}

# Run the test suite on the lowest versions pyproject.toml allows (a fresh venv, uv).
test-lowest *args:
    bash scripts/test-lowest.sh {{args}}

# Run the whole test suite (in-memory MongoDB; set TEST_MONGODB_URL to add a real server).
test *args:
    python -m pytest {{args}}

# Run the database-facing tests through PyMongo's real client against a MongoDB-wire
# server in memory (needs Python 3.13; no MongoDB or Docker).
test-wire *args:
    bash scripts/test-wire.sh {{args}}

# Run the test suite against the MongoDB of docker-compose.yml as well.
test-mongo *args:
    docker compose up -d --wait mongo
    TEST_MONGODB_URL=mongodb://127.0.0.1:27017 python -m pytest {{args}}

# Lint, check formatting and type-check (mypy, strict).
lint:
    python -m ruff check src tests bench scripts
    python -m ruff format --check src tests bench scripts
    python -m mypy

# Rebuild vibetuner's own stylesheet (src/vibetuner/static/vibetuner.css) with Tailwind's
# standalone CLI; a test fails until the committed file matches its source.
css:
    tailwindcss --input src/vibetuner/styles/vibetuner.css --output src/vibetuner/static/vibetuner.css --minify

# Refresh vibetuner's own catalogs: extract the strings, update es/de, compile. New
# entries then need translating in src/vibetuner/locales/*/LC_MESSAGES/vibetuner.po
# (a test fails until they are) and compiling again.
i18n:
    pybabel extract -F babel.cfg -k N_ -k lazy_gettext --no-location --sort-output --omit-header -o src/vibetuner/locales/vibetuner.pot .
    pybabel update -i src/vibetuner/locales/vibetuner.pot -d src/vibetuner/locales -D vibetuner --no-fuzzy-matching
    pybabel compile -D vibetuner -d src/vibetuner/locales --statistics

# Screenshots of every page of a freshly scaffolded app, light and dark (docs/screenshots).
screenshots:
    python scripts/screenshots.py --out docs/screenshots

# Serve the documentation site at http://127.0.0.1:8001, rebuilt as you edit.
docs:
    NO_MKDOCS_2_WARNING=1 python -m mkdocs serve --dev-addr 127.0.0.1:8001

# Build the documentation site strictly (as CI does) into site/.
docs-build:
    NO_MKDOCS_2_WARNING=1 python -m mkdocs build --strict --site-dir site

# Format the code.
fmt:
    python -m ruff format src tests bench
    python -m ruff check --fix src tests bench

# Run every benchmark in bench/ (each prints ratios and exits non-zero on a missed target).
bench:
    python bench/startup.py
    python bench/requests.py
    python bench/requests.py --wire
    python bench/pages.py
    python bench/scaffold.py
    python bench/blob_memory.py
    python bench/jobs.py
    python bench/cache.py
    python bench/realtime.py
    python bench/observability.py
