python -c "from my_app.settings import AppSettings; AppSettings()"
