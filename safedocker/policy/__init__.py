"""What the admin wrote: the policy model, where files live, the TOML config, and policy
exchange with other tools. Submodules are imported by name; this package imports nothing."""
