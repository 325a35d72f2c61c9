vibetuner i18n compile
