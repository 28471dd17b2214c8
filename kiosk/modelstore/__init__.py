"""The model store: manifests, signed bundles, the installed versions per task, install with health check and
rollback, remote deploy, and the `kiosk models` command. One folder so the tree shows the concern."""
