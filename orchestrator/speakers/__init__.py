"""Remote speakers: signed join links, their WHIP sessions, status and recorded messages."""
