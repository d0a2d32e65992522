"""Dates and numbers for people, in English (en, en-gb): "5 Dec 2026, 14:03 UTC" and
"1,234,567.89". Only what is shown: forms read ISO dates (DATE_INPUT_FORMATS are
Django's), and the API writes RFC 3339."""

DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i T"
SHORT_DATETIME_FORMAT = "j M Y, H:i T"
TIME_FORMAT = "H:i"
MONTH_DAY_FORMAT = "j F"
YEAR_MONTH_FORMAT = "F Y"
FIRST_DAY_OF_WEEK = 1  # Monday
DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
