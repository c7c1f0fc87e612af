"""Issue photos are stored once per issue: a photo re-sent to the same issue (a phone catching
up after losing the answer to its first upload) is the one already stored, not a second row.

The photo is re-encoded on upload (gis_service/workflow/photos.py), the same file giving the
same JPEG, so its SHA-256 names it: a unique constraint on ``(issue_id, sha256)`` lets the
insert skip a photo the issue already has, even when two uploads of it arrive at once. Rows
already stored twice keep their first copy.

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

UPGRADE = """
DELETE FROM workflow_photo AS later USING workflow_photo AS first
 WHERE later.issue_id = first.issue_id AND later.sha256 = first.sha256 AND later.id > first.id;
ALTER TABLE workflow_photo ADD CONSTRAINT uq_workflow_photo_issue_sha256 UNIQUE (issue_id, sha256);
"""

DOWNGRADE = """
ALTER TABLE workflow_photo DROP CONSTRAINT uq_workflow_photo_issue_sha256;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
