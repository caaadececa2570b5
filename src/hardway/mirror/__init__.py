"""The artifact mirror: upstream release files laid out as their official URLs are."""
