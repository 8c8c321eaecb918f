"""Makes framework-arena's configs reachable from any working directory once installed."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class FrameworkArenaSearchPathPlugin(SearchPathPlugin):
    """Appends ``pkg://framework_arena.conf``: lowest precedence, so a user's own configs win."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        # The schemas the YAML files extend must be in the ConfigStore before they are loaded.
        from framework_arena.compare.settings import register as register_compare
        from framework_arena.config import register_configs

        register_configs()
        register_compare()
        search_path.append(provider="framework-arena", path="pkg://framework_arena.conf")
