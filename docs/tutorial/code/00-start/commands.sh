vibetuner scaffold new myapp --defaults
cd myapp
python -m pip install -e ".[dev]"
vibetuner run dev
