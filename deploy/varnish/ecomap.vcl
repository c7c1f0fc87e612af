vcl 4.1;
# EcoMap Xiamen: Varnish (Debian's varnish 7.x) in front of the service, or of nginx in front
# of several instances (deploy/nginx/ecomap.conf). It caches public vector tiles only and
# keeps them until the service bans them: every worker of every instance sends a BAN with the
# URL pattern of the tiles a committed change touched (at every zoom), as it drops them from
# its own cache (gis_service/scaleout/purge.py, ECOMAP_HTTP_CACHE__PURGE_URLS). Anything sent
# with credentials (Authorization, X-API-Key, a session cookie) goes to the service uncached;
# so does any reply the service marks private, no-store or stale.
#
#   varnishd -a 127.0.0.1:6081 -f /path/to/deploy/varnish/ecomap.vcl -s malloc,1g
#
# The backend below is the service (or nginx); edit host and port for the deployment.

backend ecomap {
    .host = "127.0.0.1";
    .port = "8000";
    .connect_timeout = 2s;
    .first_byte_timeout = 40s;  # beyond the tile query's statement timeout (30 s)
}

# Who may send BANs: the service's hosts.
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(403, "BAN is allowed from the service's hosts only"));
        }
        if (!req.http.X-Ban-Url) {
            return (synth(400, "BAN needs an X-Ban-Url header (a regular expression on the URL)"));
        }
        if (req.http.X-Ban-Max-Age) {
            # A repeated ban: only what was stored since the first one (a render that began
            # before the change and ended after the first ban).
            ban("obj.http.x-url ~ " + req.http.X-Ban-Url + " && obj.age < " + req.http.X-Ban-Max-Age);
        } else {
            ban("obj.http.x-url ~ " + req.http.X-Ban-Url);
        }
        return (synth(200, "Banned"));
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    # Vector tiles only: /tiles/{layers}/{z}/{x}/{y}.pbf and the OGC API – Tiles form; and the
    # PMTiles archives (`ecomap tiles export`, served from ECOMAP_TILES__ARCHIVE_DIR): the file,
    # whose range requests Varnish answers from the whole object it fetched once, and its tiles.
    if (req.url !~ "^/(tiles/[a-z0-9_,]+/[0-9]+/[0-9]+/[0-9]+\.pbf|ogc/collections/[a-z0-9_]+/tiles/WebMercatorQuad/[0-9]+/[0-9]+/[0-9]+)(\?|$)"
        && req.url !~ "^/archives/[A-Za-z0-9_.-]+(\.pmtiles|/[0-9]+/[0-9]+/[0-9]+\.pbf)$") {
        return (pass);
    }
    if (req.http.Authorization || req.http.X-API-Key || req.http.Cookie ~ "(^|;\s*)ecomap_session=") {
        return (pass);
    }
    unset req.http.Cookie;
    return (hash);
}

sub vcl_backend_response {
    set beresp.http.x-url = bereq.url;  # what the bans match (lurker-friendly: no req.* in bans)
    if (beresp.status >= 500 && bereq.is_bgfetch) {
        return (abandon);  # keep serving the copy in grace while the service cannot answer
    }
    if (bereq.uncacheable) {
        return (deliver);
    }
    if (beresp.http.Cache-Control ~ "(private|no-store)" || beresp.http.Warning || beresp.http.Set-Cookie
        || (beresp.status != 200 && beresp.status != 204)) {
        set beresp.uncacheable = true;
        set beresp.ttl = 10s;
        return (deliver);
    }
    if (bereq.url ~ "^/archives/") {
        # An archive changes when it is exported again (no row change bans it): kept a minute,
        # then revalidated with its ETag (a 304 while unchanged), served from grace meanwhile.
        set beresp.ttl = 60s;
        set beresp.grace = 24h;
        set beresp.keep = 24h;
        return (deliver);
    }
    # Exact bans keep the copy right; the TTL only bounds the damage of a ban that was lost.
    set beresp.ttl = 1h;
    set beresp.grace = 24h;  # served (and revalidated in the background) while the service is down
    set beresp.keep = 24h;   # kept for conditional revalidation (If-None-Match on the ETag)
    return (deliver);        # the built-in rules would not store the service's `no-cache`
}

sub vcl_deliver {
    unset resp.http.x-url;
    if (obj.hits > 0) {
        set resp.http.X-Edge-Cache = "HIT";
    } else {
        set resp.http.X-Edge-Cache = "MISS";
    }
}
