"""Reading a roster CSV as registration systems export it.

Exports differ ("Bib", "bib_number", "First Name", "first_name", semicolons from a European
Excel, a byte-order mark), so headers are matched loosely. One bad line must not lose the
other thousand runners: good rows are kept, each bad line is reported with its number.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

MAX_AGE = 120
MAX_FIELD_LENGTH = 200

# Normalised header -> our column. Normalising lowercases and turns spaces/dashes/dots into "_".
HEADER_ALIASES: dict[str, str] = {
    "bib": "bib", "bib_number": "bib", "bib_no": "bib", "bib_num": "bib", "bibnumber": "bib",
    "number": "bib", "race_number": "bib",
    "first_name": "first_name", "firstname": "first_name", "first": "first_name", "given_name": "first_name",
    "last_name": "last_name", "lastname": "last_name", "last": "last_name", "surname": "last_name",
    "family_name": "last_name",
    "age": "age",
    "gender": "gender", "sex": "gender",
    "city": "city", "town": "city",
    "state": "state", "province": "state", "region": "state",
    "division": "division", "category": "division", "age_group": "division", "agegroup": "division",
    "team": "team", "club": "team", "team_name": "team",
}


@dataclass(frozen=True)
class Participant:
    bib: str
    first_name: str = ""
    last_name: str = ""
    age: int | None = None
    gender: str | None = None
    city: str | None = None
    state: str | None = None
    division: str | None = None
    team: str | None = None


@dataclass(frozen=True)
class RosterProblem:
    line: int | None  # None: about the whole file
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line is not None else self.message


@dataclass
class ParsedRoster:
    participants: list[Participant] = field(default_factory=list)
    errors: list[RosterProblem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def normalise_header(name: str) -> str:
    return re.sub(r"[\s\-.]+", "_", name.strip().lower()).strip("_")


def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM) as most tools write; Windows-1252 as older Excel does."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    first_line = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(first_line, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def parse_roster(data: bytes | str) -> ParsedRoster:
    """Parse a roster file; never raises for bad content, it reports it."""
    text = decode_csv(data) if isinstance(data, bytes) else data.lstrip("\ufeff")
    result = ParsedRoster()
    if not text.strip():
        result.errors.append(RosterProblem(None, "the file is empty"))
        return result
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(text))
    try:
        header = next(reader)
    except csv.Error as error:
        result.errors.append(RosterProblem(1, f"cannot read the header: {error}"))
        return result
    columns: list[str | None] = []
    for raw_name in header:
        column = HEADER_ALIASES.get(normalise_header(raw_name))
        if column is None or column in columns:
            if raw_name.strip():
                result.ignored_columns.append(raw_name.strip())
            column = None
        columns.append(column)
    if "bib" not in columns:
        found = ", ".join(name.strip() for name in header if name.strip()) or "none"
        result.errors.append(RosterProblem(1, f"no bib column in the header (columns found: {found})"))
        return result

    first_line_of_bib: dict[str, int] = {}
    while True:
        line_number = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            result.errors.append(RosterProblem(line_number, f"not valid CSV: {error}"))
            break
        if not any(value.strip() for value in fields):
            continue  # blank lines are not runners
        participant, problem = _participant_from(fields, columns)
        if problem is None and participant.bib in first_line_of_bib:
            problem = f"bib {participant.bib} is already on line {first_line_of_bib[participant.bib]}"
        if problem is not None:
            result.errors.append(RosterProblem(line_number, problem))
            continue
        first_line_of_bib[participant.bib] = line_number
        result.participants.append(participant)
    return result


def _participant_from(fields: list[str], columns: list[str | None]) -> tuple[Participant | None, str | None]:
    if len(fields) > len(columns) and any(value.strip() for value in fields[len(columns):]):
        return None, (f"has {len(fields)} fields but the header has {len(columns)} "
                      "(a comma inside a name needs quotes)")
    values: dict[str, str] = {}
    for column, value in zip(columns, fields):
        if column is not None:
            values[column] = value.strip()
    for column, value in values.items():
        if len(value) > MAX_FIELD_LENGTH:
            return None, f"{column} is longer than {MAX_FIELD_LENGTH} characters"
    bib = values.get("bib", "")
    if not bib:
        return None, "bib is missing"
    age_text = values.get("age", "")
    age = None
    if age_text:
        try:
            age = int(age_text)
        except ValueError:
            return None, f"age {age_text!r} is not a whole number"
        if not 0 <= age <= MAX_AGE:
            return None, f"age {age} is not between 0 and {MAX_AGE}"
    optional = {name: (values.get(name) or None) for name in ("gender", "city", "state", "division", "team")}
    return Participant(bib=bib, first_name=values.get("first_name", ""), last_name=values.get("last_name", ""),
                       age=age, **optional), None
