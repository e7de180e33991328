"""The `Dify` shell type: a member whose Shell says `shellType: Dify` answers through a Dify app's Service API.

Configured by the member's Model env (`DIFY_API_KEY`, `DIFY_BASE_URL`, optional `DIFY_APP_ID`, `DIFY_PARAMS`); see
docs/dify.md. Registered through the `wegent` entry-point group by `_plugin`.
"""

from ._client import DifyClient
from ._config import DifyConfig, merge_params, split_prompt
from ._runtime import EMPTY_ANSWER, request_for, run_turn

__all__ = ["EMPTY_ANSWER", "DifyClient", "DifyConfig", "merge_params", "request_for", "run_turn", "split_prompt"]
