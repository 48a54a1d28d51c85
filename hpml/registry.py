"""A name -> factory registry for models, datasets and optimizations; it feeds ``create_*``/``list_*`` and the test matrices."""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from hpml.errors import HpmlError

T = TypeVar("T")


class Registry(Generic[T]):
    """Ordered mapping of unique names to entries (factories or objects)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``entry`` under ``name``; a duplicate name is an error."""

        def add(entry: T) -> T:
            self.add(name, entry)
            return entry

        return add

    def add(self, name: str, entry: T) -> None:
        if name in self._entries:
            raise HpmlError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise HpmlError(
                f"unknown {self.kind} {name!r}; registered: {', '.join(self._entries)}"
            ) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
