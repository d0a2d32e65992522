"""Amounts for people: thousands separated, decimals as recorded; in pages only."""

from contributions.chart import amount


def test_amounts_read_with_thousands_separators():
    assert amount("1234567.89") == "1,234,567.89"
    assert amount("-1234.5") == "-1,234.5"
    assert amount("0.00") == "0.00"
    assert amount("133.80") == "133.80"


def test_text_that_is_not_an_amount_is_shown_as_it_is():
    assert amount("-") == "-"
    assert amount("NaN") == "NaN"
