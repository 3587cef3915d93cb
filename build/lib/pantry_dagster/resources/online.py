"""The online store (Redis) as a Dagster resource; the URL comes from PANTRY_REDIS_URL."""

import dagster as dg

from pantry import Store


class OnlineStore(dg.ConfigurableResource):
    """Where pushes go. Unset redis_url means Pantry's local dev redis-server under PANTRY_HOME."""

    defs: str
    home: str
    redis_url: str | None = None
    offline_uri: str = ""  # empty: PANTRY_OFFLINE_URI, else the DuckDB file under ``home``

    def store(self) -> Store:
        return Store(
            defs=self.defs, home=self.home, redis_url=self.redis_url or None, offline_uri=self.offline_uri or None
        )
