"""Roster CSV parsing: the exports registration systems really produce, and clear line errors."""

from web.roster import Participant, parse_roster


def test_header_spellings_are_matched_case_insensitively():
    parsed = parse_roster(b"BIB,First Name,last_name,AGE,Sex,City,State,Age Group,Club\n"
                          b"7,Mo,Farah,41,M,London,,M40-44,Newham\n")
    assert parsed.errors == []
    assert parsed.participants == [Participant("7", "Mo", "Farah", 41, "M", "London", None, "M40-44", "Newham")]


def test_byte_order_mark_semicolons_and_windows_1252_are_read():
    parsed = parse_roster("\ufeffBib;First Name;Last Name\r\n12;Zoë;Müller\r\n".encode("utf-8"))
    assert [(p.bib, p.first_name, p.last_name) for p in parsed.participants] == [("12", "Zoë", "Müller")]
    parsed = parse_roster("bib,first_name\n3,José\n".encode("cp1252"))
    assert parsed.participants[0].first_name == "José"


def test_bad_lines_are_reported_by_number_and_good_rows_kept():
    parsed = parse_roster(b"bib,first_name,age\n"
                          b"1,Ann,30\n"
                          b",Nobody,20\n"
                          b"2,Bob,old\n"
                          b"3,Cat,200\n"
                          b"1,Dup,40\n"
                          b"\n"
                          b"4,Dan,\n")
    assert [p.bib for p in parsed.participants] == ["1", "4"]
    assert [str(problem) for problem in parsed.errors] == [
        "line 3: bib is missing",
        "line 4: age 'old' is not a whole number",
        "line 5: age 200 is not between 0 and 120",
        "line 6: bib 1 is already on line 2",
    ]
    assert parsed.participants[1].age is None  # an empty age is allowed


def test_line_numbers_count_quoted_newlines():
    parsed = parse_roster(b'bib,team\n1,"Two\nLines"\n,missing\n')
    assert parsed.participants[0].team == "Two\nLines"
    assert [str(problem) for problem in parsed.errors] == ["line 4: bib is missing"]


def test_a_row_with_an_unquoted_comma_is_rejected_not_misread():
    parsed = parse_roster(b"bib,first_name,last_name\n5,Smith, Jr.,John\n")
    assert parsed.participants == []
    assert "line 2: has 4 fields but the header has 3" in str(parsed.errors[0])


def test_a_file_without_a_bib_column_says_which_columns_it_found():
    parsed = parse_roster(b"name,age\nAnn,30\n")
    assert parsed.participants == []
    assert str(parsed.errors[0]) == "line 1: no bib column in the header (columns found: name, age)"


def test_unknown_columns_are_ignored_and_listed():
    parsed = parse_roster(b"bib,shirt size\n1,M\n")
    assert [p.bib for p in parsed.participants] == ["1"]
    assert parsed.ignored_columns == ["shirt size"]


def test_an_empty_file_is_an_error():
    assert str(parse_roster(b"").errors[0]) == "the file is empty"
