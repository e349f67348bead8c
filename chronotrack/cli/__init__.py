"""The ``chronotrack`` command: partners, controller logins, operators, API tokens, roster, simulator."""
