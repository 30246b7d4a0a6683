"""Slack's OAuth tables: workspaces that installed the app, and install states in flight.

slack_sdk's SQLAlchemy stores (AsyncSQLAlchemyInstallationStore and
AsyncSQLAlchemyOAuthStateStore, used by bot/channels/slack.py) read and write
these tables; their shape is the library's own (its `build_*_table` class
methods), declared here on our metadata so that our migrations create them
(0005_slack.py) and the migration test holds them to it, instead of the library
creating them behind Alembic's back.
"""

from __future__ import annotations

from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlmodel import SQLModel

INSTALLATIONS = SQLAlchemyInstallationStore.default_installations_table_name
BOTS = SQLAlchemyInstallationStore.default_bots_table_name
OAUTH_STATES = SQLAlchemyOAuthStateStore.default_table_name

installations = SQLAlchemyInstallationStore.build_installations_table(
    SQLModel.metadata, INSTALLATIONS
)
bots = SQLAlchemyInstallationStore.build_bots_table(SQLModel.metadata, BOTS)
oauth_states = SQLAlchemyOAuthStateStore.build_oauth_states_table(SQLModel.metadata, OAUTH_STATES)
