"""The chiefs' work (河长制 / 湾长制): issues (问题) with their handling workflow, patrols,
assessment, one file per river and bay, and alerts from the monitoring data (``alerts``). The
workflow's states and transitions are data (``workflow.yaml``), read and validated by
``machine``; ``service`` holds the queries and ``routes`` the HTTP API under ``/api/issues``."""
