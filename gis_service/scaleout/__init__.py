"""Scale-out on existing engines: the HTTP cache in front of the service (Varnish) is purged
exactly when rows change (``purge``); the configuration shipped for it is in ``deploy/``."""
