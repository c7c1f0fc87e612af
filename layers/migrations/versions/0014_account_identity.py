"""Single sign-on identities: which OpenID Connect subject signs in as which account.

- ``account_identity``: one row per (issuer, subject) an OpenID provider vouched for, linked
  to the local ``account`` it signs in as (created at its first sign-on). An account made by
  single sign-on has no password (its ``password_hash`` is ``!sso``, which no password
  matches) until an administrator sets one.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE account_identity (
    issuer text NOT NULL,
    subject text NOT NULL,
    account_id bigint NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX ix_account_identity_account ON account_identity (account_id);
"""

DOWNGRADE = """
DROP TABLE account_identity;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
