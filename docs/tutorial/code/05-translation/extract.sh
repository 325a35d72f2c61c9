vibetuner i18n extract
vibetuner i18n update
