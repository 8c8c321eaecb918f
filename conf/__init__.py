# Makes conf/ importable as framework_arena.conf, so Hydra finds it as pkg://framework_arena.conf
# from any working directory once the package is installed.
