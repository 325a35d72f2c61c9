vibetuner run prod --workers 2
vibetuner run worker
