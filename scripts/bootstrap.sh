#!/usr/bin/env bash
# Install what the project needs on a Debian/Ubuntu machine, skipping what is present:
#   scripts/bootstrap.sh          apt packages for serving, .venv with the project, frontend build
#   scripts/bootstrap.sh --test   also the test/benchmark tools (Chromium, wrk, dev Python packages)
# Idempotent: a second run only checks stamps and returns within seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WITH_TEST=0
[ "${1:-}" = "--test" ] && WITH_TEST=1

say() { printf '\033[1;34m[bootstrap]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[bootstrap] error:\033[0m %s\n' "$*" >&2; exit 1; }

# --- apt packages -----------------------------------------------------------------
APT_PACKAGES=(postgresql-15 postgresql-15-postgis-3 gdal-bin fonts-wqy-microhei python3-venv nodejs npm)
[ "$WITH_TEST" = 1 ] && APT_PACKAGES+=(chromium wrk varnish nginx)

has_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  case "$pkg" in
    postgresql-15) [ -x /usr/lib/postgresql/15/bin/postgres ] && continue ;;
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
    python3-venv) python3 -c "import venv, ensurepip" 2>/dev/null && continue ;;
  esac
  has_pkg "$pkg" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then
    command -v sudo >/dev/null || die "missing packages ${missing[*]}: run as root or install sudo"
    SUDO="sudo"
  fi
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get: install them by hand (or use environment.yml with conda)"
  say "installing apt packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python virtual environment -------------------------------------------------------
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11 or newer is required ($PYTHON is $("$PYTHON" --version))"
EXTRAS=""
[ "$WITH_TEST" = 1 ] && EXTRAS="[dev]"
STAMP=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)${EXTRAS:+-dev}"
if [ ! -f "$STAMP" ]; then
  [ -x .venv/bin/python ] || { say "creating .venv"; "$PYTHON" -m venv .venv; }
  say "installing the project and its pinned dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install -q -e ".$EXTRAS" 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import gis_service, geopandas, shapely" || die "the Python install failed (see pip's output above)"
  rm -f .venv/.installed-*
  touch "$STAMP"
fi

# --- Frontend build -----------------------------------------------------------------------
if [ -f frontend/package.json ]; then
  SRC_HASH="$(cd frontend && { find package.json package-lock.json index.html vite.config.* src public scripts -type f 2>/dev/null || true; } | sort | xargs -r sha1sum | sha1sum | cut -c1-12)"
  if [ ! -f "frontend/dist/.build-$SRC_HASH" ]; then
    say "building the frontend (npm ci && npm run build)"
    # --include=dev: the build tools and axe-core (the accessibility check of tests/browser) are devDependencies.
    (cd frontend && npm ci --include=dev --no-audit --no-fund --loglevel=error && npm run build --silent) || die "the frontend build failed"
    touch "frontend/dist/.build-$SRC_HASH"
  fi
fi
# --- Test OpenID provider (tests/oidc: oidc-provider for the single sign-on tests) -----------
if [ "$WITH_TEST" = 1 ]; then
  OIDC_STAMP="tests/oidc/node_modules/.installed-$(sha1sum tests/oidc/package-lock.json | cut -c1-12)"
  if [ ! -f "$OIDC_STAMP" ]; then
    say "installing the test OpenID provider (npm ci in tests/oidc)"
    (cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in tests/oidc failed"
    touch "$OIDC_STAMP"
  fi
fi
say "ready"
