"""Alembic environment: the same DATABASE_URL and models as the app."""

from logging.config import fileConfig

from alembic import context
from sqlmodel import SQLModel

import fibernode.models  # noqa: F401  (registers every table on SQLModel.metadata)
from fibernode.db import create_engine_for, get_engine
from fibernode.models import include_in_autogenerate

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it."""
    url = str(get_engine().url)
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=url.startswith("sqlite"),
                      include_object=include_in_autogenerate)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against the live database (a connection may be passed in by tests)."""
    connection = config.attributes.get("connection")
    if connection is None:
        engine = create_engine_for(str(get_engine().url.render_as_string(hide_password=False)))
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connection)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_in_autogenerate,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
