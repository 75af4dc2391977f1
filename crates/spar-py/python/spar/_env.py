"""Games and tasks as text environments: TextArena's shape over spar's ``Env`` contract.

TextArena's loop works unchanged::

    env = spar.make("kuhn")
    env.reset(num_players=2, seed=0)
    done = False
    while not done:
        player_id, observation = env.get_observation()
        done, step_info = env.step(action=agents[player_id](observation))
    rewards, game_info = env.close()

and spar's own methods give the parts of the prompt (``observation()``), the roles, the
canonical legal answers and the transcript. An invalid move is data: ``step`` returns it
with its reason, and the environment's invalid-move rule decides what it costs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import _spar


@dataclass(frozen=True)
class Observation:
    """What one player sees before acting (``spar_core::Observation``)."""

    player: int
    #: The role key, e.g. ``kuhn/player0`` or ``arithmetic/solver``.
    role: str
    #: The rules (the system prompt); empty in the ``norules`` and ``compact`` views.
    system: str
    role_text: str
    state_text: str
    #: Names of the legal actions (games), or ``None`` (tasks: free text).
    legal_actions: list[str] | None
    answer_format: str
    #: The user message: role text, state, legal actions and answer format.
    prompt: str
    #: The system text and the user message in one string.
    full_prompt: str

    def messages(self) -> list[dict[str, str]]:
        """The observation as chat messages: a system message (when there are rules) and
        the user message."""
        messages = []
        if self.system.strip():
            messages.append({"role": "system", "content": self.system})
        messages.append({"role": "user", "content": self.prompt})
        return messages


class Env:
    """A game or a task as a multi-agent text environment (build one with ``spar.make``)."""

    def __init__(self, native: Any):
        self._env = native

    def __repr__(self) -> str:
        return f"spar.Env({self.name!r})"

    @property
    def name(self) -> str:
        """The game or task specification, e.g. ``kuhn`` or ``arithmetic(digits=1..2,...)``."""
        return self._env.name

    @property
    def num_players(self) -> int:
        return self._env.num_players

    @property
    def is_task(self) -> bool:
        """Whether this is a verifiable task (one seat, free-text answers)."""
        return self._env.is_task

    @property
    def roles(self) -> list[str]:
        """Every seat's role key, in seat order."""
        return self._env.roles

    def reset(self, seed: int = 0, num_players: int | None = None) -> None:
        """Starts an episode whose randomness all comes from ``seed`` (for a task, the seed
        is the index of the problem). ``num_players`` is TextArena's argument: when given it
        must equal the environment's number of seats."""
        if num_players is not None and num_players != self.num_players:
            raise ValueError(
                f"{self.name} has {self.num_players} player(s); reset was asked for {num_players}"
            )
        self._env.reset(seed)

    def current_player(self) -> int | None:
        """The player to move, or ``None`` once the episode is over."""
        return self._env.current_player()

    @property
    def done(self) -> bool:
        return self._env.is_done()

    def observation(self, player: int | None = None) -> Observation:
        """What ``player`` (default: the player to move) sees now."""
        return Observation(**json.loads(self._env.observation_json(player)))

    def get_observation(self) -> tuple[int, str]:
        """TextArena's ``get_observation``: the player to move and the full prompt."""
        observation = self.observation()
        return observation.player, observation.full_prompt

    def step(self, action: str, player: int | None = None) -> tuple[bool, dict]:
        """``player`` (default: the player to move) answers ``action`` (free text, e.g.
        ``\\boxed{bet}``). Returns TextArena's ``(done, step_info)``; ``step_info`` is the
        step as data: ``player``, ``outcome`` (``{"kind": "move", "action_text", "action"}``
        or ``{"kind": "invalid", "reason", "retry"}``), ``invalid``, ``done``, ``truncated``."""
        info = json.loads(self._env.step_json(action, player))
        info["invalid"] = info["outcome"]["kind"] == "invalid"
        return info["done"], info

    def returns(self) -> list[float]:
        """Per-player returns: final once the episode is over, zeros before."""
        return self._env.returns()

    @property
    def rewards(self) -> dict[int, float]:
        """The returns keyed by player, as TextArena reports rewards."""
        return dict(enumerate(self.returns()))

    def close(self) -> tuple[dict[int, float], dict[int, dict]]:
        """TextArena's ``close``: the rewards and, per player, its role, its invalid moves
        and whether the turn limit ended the episode."""
        transcript = self.transcript()
        info = {
            player: {
                "role": role,
                "invalid_moves": transcript["invalid_moves"][player]
                if player < len(transcript["invalid_moves"])
                else 0,
                "truncated": transcript["truncated"],
            }
            for player, role in enumerate(self.roles)
        }
        return self.rewards, info

    def transcript(self) -> dict:
        """The episode so far (``spar_core::Transcript``): every turn's prompt, completion
        and outcome, invalid moves per player, the returns once over."""
        return json.loads(self._env.transcript_json())

    def legal_answers(self) -> list[str] | None:
        """The canonical answers naming the legal moves of the player to move (what a
        scripted player writes), or ``None`` for a task."""
        return self._env.legal_answers()


def make(
    spec: str,
    *,
    protocol: str | None = None,
    invalid_move_rule: str | None = None,
    max_turns: int | None = None,
    view: str | None = None,
    split: str | None = None,
    task_seed: int = 0,
) -> Env:
    """The environment named ``spec``: a game (``spar.games()``: ``kuhn``, ``kuhn(hands=5)``,
    ``tictactoe``, ...) or a task (``spar.tasks()``: ``arithmetic``, ``countdown(numbers=3)``,
    ``jsonl:PATH``, ...).

    Games take the text options of ``spar play``: ``protocol`` (``boxed``, SPIRAL's default;
    ``bracketed``, TextArena's; ``bare``), ``invalid_move_rule`` (``spiral``, ``textarena``,
    ``retry:N``), ``max_turns`` (default 50) and ``view`` (``full``, ``norules``,
    ``compact``). Tasks take ``split`` (``train`` or ``test``) and the generator seed
    ``task_seed``."""
    return Env(
        _spar.make(spec, protocol, invalid_move_rule, max_turns, view, split, task_seed)
    )


def games() -> list[str]:
    """The names of the games spar ships."""
    return _spar.games()
