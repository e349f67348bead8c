"""Pulling an event's roster from a registration platform (ChronoTrack Live, RunSignUp, Race Roster).

Each platform module pages through its participants and maps them to ``web.roster.Participant``;
``job`` runs one pull on the reactor, stores rows through the same upsert as the CSV upload and
keeps progress in ``roster_imports``; ``store`` holds the SQL; ``credentials`` seals what an
operator chose to remember with the server key.
"""
