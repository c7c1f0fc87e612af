"""Service settings: one pydantic-settings root read from ``ECOMAP_*`` environment variables.

Built inside ``create_app()`` (never at import time), so tests create apps with their own
settings. Nested sections use ``__`` in variable names, e.g. ``ECOMAP_TILES__CACHE_DIR``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import AliasChoices, BaseModel, Field, PostgresDsn, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from layers.regions import DEFAULT_REGION, get_region, region_names

REPO_DIR = Path(__file__).resolve().parent.parent
PASSFILE = REPO_DIR / ".data" / "pgpass"
"""libpq password file ``scripts/pgcluster.sh`` writes (mode 0600) for the local cluster's roles."""
OWNER_ROLE = "ecomap_owner"
"""The local cluster's owner role: migrations, imports, ``ecomap setup`` (README "Database roles")."""
WEB_ROLE = "ecomap_web"
"""The local cluster's web role: the service (reads layers, writes only its own tables)."""


def describe_database(url: str) -> str:
    """``host:port/database`` of a database URL, for messages (never the password)."""
    try:
        parts = conninfo_to_dict(url)
    except (psycopg.ProgrammingError, ValueError):
        return "(an unreadable database URL)"
    return f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


def local_database_url(role: str, database: str = "ecomap", environ: Mapping[str, str] | None = None) -> str:
    """The URL of ``database`` on the checkout's local cluster (127.0.0.1:``ECOMAP_PG_PORT``,
    default 55432) as ``role``; the password comes from ``.data/pgpass``, never from the URL."""
    env = os.environ if environ is None else environ
    port = (env.get("ECOMAP_PG_PORT") or "").strip() or "55432"
    return f"postgresql://{role}@127.0.0.1:{port}/{database}?passfile={PASSFILE}"


def database_url(environ: Mapping[str, str] | None = None) -> str:
    """The database the service uses, as the web role: ``ECOMAP_DATABASE_URL`` or
    ``DATABASE_URL``, else the checkout's local cluster on 127.0.0.1:``ECOMAP_PG_PORT``
    (default 55432, as ``scripts/pgcluster.sh`` starts it) as ``ecomap_web``."""
    env = os.environ if environ is None else environ
    explicit = env.get("ECOMAP_DATABASE_URL") or env.get("DATABASE_URL")
    if explicit:
        return explicit
    return local_database_url(WEB_ROLE, environ=env)


def owner_database_url(environ: Mapping[str, str] | None = None) -> str:
    """The database the ``ecomap`` CLI uses (migrations, imports, demo load, users, keys), as the
    owner role: ``ECOMAP_DATABASE_OWNER_URL``, else the service's URL when one is set (a
    deployment with a single role), else the local cluster as ``ecomap_owner``."""
    env = os.environ if environ is None else environ
    explicit = env.get("ECOMAP_DATABASE_OWNER_URL") or env.get("ECOMAP_DATABASE_URL") or env.get("DATABASE_URL")
    if explicit:
        return explicit
    return local_database_url(OWNER_ROLE, environ=env)


def with_database(url: str, database: str) -> str:
    """The same server, role and options as ``url`` for another database."""
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


def as_role(url: str, role: str) -> str:
    """The same database and options as the URL ``url`` for another login role, without a
    password (it comes from the passfile the URL names, or libpq's ``~/.pgpass`` / ``PGPASSFILE``)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.rsplit('@', 1)[-1]}"))


class DatabaseSettings(BaseModel):
    """Connection pool sizing and timeouts."""

    pool_min_size: int = Field(default=2, ge=1)
    pool_max_size: int = Field(default=16, ge=1)
    connect_timeout_s: float = Field(default=3.0, gt=0)
    statement_timeout_ms: int = Field(default=30_000, ge=0, description="0 disables the limit")
    replica_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Streaming replicas of the database for tile and feature reads, as the web role "
        "(comma-separated URLs); reads wait for no replica behind a change (gis_service/scaleout/replicas.py)",
    )

    @field_validator("replica_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value


class TileSettings(BaseModel):
    """Vector tile serving."""

    cache_enabled: bool = True
    cache_memory_mb: int = Field(default=256, ge=0)
    cache_dir: Path | None = Field(default=None, description="On-disk tile store; none keeps tiles in memory only")
    cache_disk_mb: int = Field(
        default=1024, ge=1, description="Size limit of the on-disk store; the least recently used tiles go first"
    )
    cache_variant_mb: int = Field(
        default=16,
        ge=0,
        description="Memory for tiles of client-chosen variants (filter, properties, revision); never on disk",
    )
    db_wait_s: float = Field(
        default=0.8,
        gt=0,
        description="Longest wait for a database connection for a tile; then a cached tile is served stale or 503",
    )
    archive_dir: Path | None = Field(default=None, description="Directory of .pmtiles archives served at /archives")
    max_age_s: int = Field(
        default=0, ge=0, description="Cache-Control max-age for tiles; 0 sends no-cache (revalidate by ETag)"
    )
    max_renders: int | None = Field(
        default=None,
        ge=1,
        description="Tile queries run at once per worker (the others wait their turn); default: CPU count + 2",
    )


class RasterSettings(BaseModel):
    """Raster layers: where their Cloud-Optimized GeoTIFFs and registrations live."""

    data_dir: Path = Field(
        default=REPO_DIR / ".data" / "rasters",
        description="Directory of the raster files (COGs); rasters added with `ecomap raster add` are "
        "registered in its catalog/ subdirectory",
    )

    @property
    def catalog_dir(self) -> Path:
        """Where ``ecomap raster add`` registers rasters (YAML files merged into the catalog)."""
        return self.data_dir / "catalog"


class AccessSettings(BaseModel):
    """Identity and access (gis_service/access): tokens, cookies, login throttling."""

    secret_key: SecretStr | None = Field(
        default=None,  # its length is checked where it is used: a validation error would echo it
        description="Key signing access tokens (32+ characters, the same for every worker); "
        "default: read from secret_key_file, generated there on first use",
    )
    secret_key_file: Path = Field(
        default=REPO_DIR / ".data" / "access_secret_key",
        description="Where the signing key is kept when ECOMAP_ACCESS__SECRET_KEY is not set (mode 0600)",
    )
    access_token_ttl_s: int = Field(default=900, ge=1, description="Lifetime of a bearer access token")
    refresh_token_ttl_s: int = Field(default=14 * 86400, ge=60, description="Lifetime of a sign-in session")
    refresh_reuse_grace_s: float = Field(
        default=10.0,
        ge=0,
        description="How long a just-used refresh token may be presented again (two tabs renewing at once) before"
        " a reuse revokes the session; 0: never",
    )
    token_cache_s: float = Field(
        default=10.0,
        ge=0,
        description="How long a worker reuses a verified token before checking its session and account again",
    )
    cookie_secure: bool | None = Field(
        default=None, description="Secure flag on the session cookies; default: when the request came over https"
    )
    login_max_failures: int = Field(default=5, ge=1, description="Failed sign-ins of one login before back-off")
    address_max_failures: int = Field(
        default=20, ge=1, description="Failed sign-ins from one client address before back-off"
    )
    lockout_base_s: float = Field(default=2.0, gt=0, description="First back-off; doubles with each further failure")
    lockout_max_s: float = Field(default=900.0, gt=0, description="Longest back-off")
    failure_window_s: float = Field(default=900.0, gt=0, description="Failures older than this are forgotten")


class LimitsSettings(BaseModel):
    """Abuse limits (gis_service/access/limits.py, headers.py): per-client request budgets and HTTPS.

    Budgets are tokens per ``window_s`` per client, refilled continuously, kept per worker."""

    enabled: bool = Field(default=True, description="Rate-limit the expensive endpoints")
    window_s: float = Field(default=60.0, gt=0, description="The period the budgets below are counted over")
    zone_check: int = Field(default=60, ge=1, description="Zone checks (JSON or upload) per window, anonymous")
    report: int = Field(default=60, ge=1, description="Zone-check reports per window, anonymous")
    export: int = Field(default=60, ge=1, description="Layer exports per window, anonymous")
    search: int = Field(default=600, ge=1, description="Name searches per window, anonymous")
    public_report: int = Field(default=3, ge=1, description="Public pollution reports per window, per address")
    signed_in_factor: float = Field(
        default=5.0, ge=1, description="Budget multiplier for signed-in accounts and API keys"
    )
    hsts: bool = Field(
        default=False, description="Send Strict-Transport-Security on every response (default: only over https)"
    )
    hsts_max_age_s: int = Field(default=31_536_000, ge=0, description="max-age of Strict-Transport-Security")


class HJ212Settings(BaseModel):
    """The HJ 212-2017 TCP receiver for station data loggers (gis_service/monitoring/ingest)."""

    enabled: bool = Field(default=True, description="Start the receiver with the service")
    host: str = Field(
        default="127.0.0.1",
        description="Address the receiver listens on; 0.0.0.0 for loggers on the network (PW is not checked yet)",
    )
    port: int = Field(default=9212, ge=0, le=65535, description="TCP port of the receiver (0: any free port)")
    group_window_ms: float = Field(
        default=2.0,
        ge=0,
        le=1000,
        description="Group commit: packets arriving within this many ms are stored in one transaction",
    )
    group_max_packets: int = Field(default=500, ge=1, description="Group commit: most packets in one transaction")
    writers: int = Field(
        default=4, ge=1, description="Group commit: concurrent group transactions (pool connections the receiver uses)"
    )


class WorkflowSettings(BaseModel):
    """The chiefs' work (gis_service/workflow): where issue photos are kept."""

    photo_dir: Path = Field(
        default=REPO_DIR / ".data" / "photos",
        description="Directory of issue photos (content-addressed files; the database keeps their checksums)",
    )
    photo_max_mb: int = Field(default=15, ge=1, le=100, description="Largest photo upload accepted")


class HttpCacheSettings(BaseModel):
    """An HTTP cache in front of the service (Varnish with deploy/varnish/ecomap.vcl), purged on change."""

    purge_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Caches to send BANs to when rows change (comma-separated URLs, e.g. http://127.0.0.1:6081/); "
        "none: no HTTP cache is purged",
    )
    repeat_ban_after_s: float = Field(
        default=1.0, gt=0, description="The ban is sent again this long after a change (renders in flight)"
    )

    @field_validator("purge_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value


class OidcSettings(BaseModel):
    """Optional single sign-on with an OpenID Connect provider (gis_service/access/oidc.py): off
    while ``issuer`` is unset. Roles come from ``role_claim`` of the ID token, through ``role_map``."""

    issuer: str | None = Field(
        default=None, description="The provider's issuer URL (its /.well-known/openid-configuration is read)"
    )
    client_id: str | None = Field(default=None, description="This service's client id at the provider")
    client_secret: SecretStr | None = Field(default=None, description="The client secret (confidential client)")
    scopes: str = Field(default="openid profile", description="Scopes asked for (space-separated; openid included)")
    role_claim: str = Field(
        default="role", description="ID token claim holding the role(s): a string or a list; dots reach into objects"
    )
    role_map: dict[str, str] = Field(
        default_factory=dict,
        description='Provider role -> EcoMap role, as JSON (e.g. {"hezhang": "chief"}); '
        "EcoMap role names map to themselves; a sign-in with no known role is refused (403)",
    )
    chief_claim: str = Field(default="chief_id", description="ID token claim with a chief's record id (role chief)")
    redirect_url: str | None = Field(
        default=None,
        description="The callback URL registered at the provider; default: <base URL>/api/auth/sso/callback",
    )
    timeout_s: float = Field(default=10.0, gt=0, description="Timeout of each request to the provider")


class MonitoringSettings(BaseModel):
    """Station status (gis_service/monitoring/status): how often changed stations are re-assessed."""

    status_interval_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="Seconds between station status refreshes (tiles and events change at most this often)",
    )
    events_max_clients: int = Field(default=200, ge=1, description="Event-stream clients one worker serves at once")


class AlertSettings(BaseModel):
    """Alerts from the monitoring data (gis_service/workflow/alerts): the evaluator the service runs."""

    enabled: bool = Field(default=True, description="Evaluate the alert rules with the service")
    interval_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Seconds between evaluations: stations with new latest values, and data missing everywhere",
    )


class FederationSettings(BaseModel):
    """Remote layers (gis_service/federation): partners' OGC API Features collections copied here."""

    dir: Path | None = Field(
        default=None,
        description="Directory of remote layer declarations (*.yaml, gis_service/federation/config.py); "
        "none: no remote layers",
    )
    refresh_enabled: bool = Field(default=True, description="Refresh the remote layers on schedule with the service")
    check_s: float = Field(
        default=30.0, gt=0, le=3600, description="Seconds between looks for remote layers due for a refresh"
    )
    timeout_s: float = Field(default=30.0, gt=0, le=600, description="Timeout of each request to a partner")
    max_page_mb: int = Field(default=64, ge=1, le=1024, description="Size of one page a partner may send (MB)")
    max_pages: int = Field(default=100, ge=1, le=10_000, description="Pages (`next` links) one refresh follows at most")
    max_features: int = Field(
        default=50_000,
        ge=1,
        le=2_000_000,
        description="Features a remote layer may hold (refused above, nothing written)",
    )


class BasemapSettings(BaseModel):
    """The deployment's own vector basemap, a PMTiles archive in the Protomaps basemap schema
    (earth, water, roads, places, ...), drawn in the browser with the pinned @protomaps/basemaps
    style; and which basemap the map opens with."""

    pmtiles_archive: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,100}$",
        description="Name of a .pmtiles archive in ECOMAP_TILES__ARCHIVE_DIR, served by the app at "
        "/archives/<name>.pmtiles (range requests)",
    )
    pmtiles_url: str | None = Field(
        default=None,
        description="URL of a .pmtiles file elsewhere (object storage answering range requests, CORS allowed); "
        "used when no pmtiles_archive is set",
    )
    flavor: Literal["light", "white", "grayscale", "dark", "black"] = Field(
        default="light", description="Protomaps basemap flavor the vector basemap is drawn in"
    )
    attribution: str = Field(
        default="© OpenStreetMap contributors", description="Attribution of the vector basemap's data"
    )
    default: str = Field(
        default="none",
        description="Basemap the map opens with when the link names none: none (offline), vector (the archive), "
        "osm, tianditu-vec, tianditu-img or amap",
    )


class Settings(BaseSettings):
    """All settings of the service."""

    model_config = SettingsConfigDict(env_prefix="ECOMAP_", env_nested_delimiter="__", extra="ignore")

    database_url: PostgresDsn = Field(
        default_factory=lambda: PostgresDsn(database_url()),
        validation_alias=AliasChoices("ECOMAP_DATABASE_URL", "DATABASE_URL", "database_url"),
        description='PostGIS the service uses, as the web role (README "Database roles"); DATABASE_URL is '
        "accepted too; default: the local cluster on ECOMAP_PG_PORT as ecomap_web",
    )
    region: str = Field(
        default=DEFAULT_REGION,
        description="Region of interest (layers/regions.yaml): imports and zone-check sites must lie in it; "
        f"one of {', '.join(region_names())}",
    )
    catalog_dir: Path | None = Field(default=None, description="Layer catalog directory (default: bundled)")
    frontend_dir: Path = Field(default=REPO_DIR / "frontend" / "dist")
    public_url: str | None = Field(default=None, description="External base URL used in links, if behind a proxy")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names whose requests may set the links' base URL when no public_url is set "
        "(comma-separated; always: 127.0.0.1, localhost and HOST, the address `ecomap serve` listens on)",
    )
    listen_host: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ECOMAP_LISTEN_HOST", "HOST", "listen_host"),
        description="The address the server listens on (`ecomap serve --host`, env HOST); a trusted Host",
    )
    tianditu_key: str | None = Field(default=None, description="Tianditu (天地图) developer key for the basemap")
    basemap: BasemapSettings = BasemapSettings()
    db: DatabaseSettings = DatabaseSettings()
    tiles: TileSettings = TileSettings()
    rasters: RasterSettings = RasterSettings()
    access: AccessSettings = AccessSettings()
    limits: LimitsSettings = LimitsSettings()
    hj212: HJ212Settings = HJ212Settings()
    http_cache: HttpCacheSettings = HttpCacheSettings()
    workflow: WorkflowSettings = WorkflowSettings()
    oidc: OidcSettings = OidcSettings()

    monitoring: MonitoringSettings = MonitoringSettings()
    alerts: AlertSettings = AlertSettings()
    federation: FederationSettings = FederationSettings()

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        return get_region(value).key

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [host.strip().lower() for host in value.split(",") if host.strip()]
        return value

    @property
    def trusted_hosts(self) -> list[str]:
        """Host names (without port) whose requests' Host builds links: the allowed ones, then
        127.0.0.1, localhost and the listen host."""
        hosts = [*self.allowed_hosts, "127.0.0.1", "localhost"]
        if self.listen_host and self.listen_host not in ("0.0.0.0", "::"):  # noqa: S104 - not a Host
            hosts.append(self.listen_host.lower())
        return list(dict.fromkeys(hosts))

    @property
    def dsn(self) -> str:
        """The database URL as a libpq connection string."""
        return str(self.database_url)
