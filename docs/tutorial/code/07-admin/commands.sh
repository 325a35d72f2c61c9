vibetuner users promote ada@example.com
vibetuner users list --role admin
