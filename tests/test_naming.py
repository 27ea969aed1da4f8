"""Names of global cloud objects: readable, within the limit, a letter first, apart per place."""

from __future__ import annotations

from multicloud.naming import placed_name


def test_placed_names_are_readable_bounded_and_apart() -> None:
    name = placed_name("IoT_Backend-db", "sub/rg/prod", limit=63)
    assert name.startswith("iot-backend-db-") and len(name) == len("iot-backend-db-") + 8
    assert placed_name("IoT_Backend-db", "sub/rg/staging", limit=63) != name
    long = placed_name("a" * 200, "x", limit=60)
    assert len(long) == 60 and long.startswith("a")
    assert placed_name("9lives", "x", limit=63).startswith("x-9lives-")
