"""The Airflow plugin of the product: the listener that turns run summaries into notes.

Registered through the `airflow.plugins` entry point in pyproject.toml, so installing the
package into Airflow's environment is all it takes (no file in the plugins folder).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from personalization.orchestration import notes


class PersonalizationPlugin(AirflowPlugin):
    """Adds the run-notes listener to the scheduler."""

    name = "personalization"
    listeners = [notes]
