"""Dates and numbers for people, in French: "5 déc. 2026, 14:03 UTC" and
"1 234 567,89" (a non-breaking space between thousands). Only what is shown, as for
English: forms read ISO dates (DATE_INPUT_FORMATS are Django's), and the API writes
RFC 3339."""

DATE_FORMAT = "j N Y"
SHORT_DATE_FORMAT = "j N Y"
DATETIME_FORMAT = "j N Y, H:i T"
SHORT_DATETIME_FORMAT = "j N Y, H:i T"
TIME_FORMAT = "H:i"
MONTH_DAY_FORMAT = "j F"
YEAR_MONTH_FORMAT = "F Y"
FIRST_DAY_OF_WEEK = 1  # lundi
DECIMAL_SEPARATOR = ","
THOUSAND_SEPARATOR = "\xa0"  # espace insécable
NUMBER_GROUPING = 3
