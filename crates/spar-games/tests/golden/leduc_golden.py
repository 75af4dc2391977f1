"""Writes leduc.tsv: every node of OpenSpiel's leduc_poker tree (pyspiel 2.0.2).

One line per node, in depth-first order: history (space separated), current player
(-1 chance, -4 terminal), legal actions, returns at terminals, and both players'
information-state strings. The Rust test `leduc_matches_openspiel_everywhere` walks spar's
tree and compares every field.  Run:  python leduc_golden.py > leduc.tsv
"""
import pyspiel

game = pyspiel.load_game("leduc_poker")


def walk(state, history):
    player = state.current_player()
    legal = state.legal_actions() if not state.is_terminal() else []
    returns = state.returns() if state.is_terminal() else []
    fields = [
        " ".join(map(str, history)),
        str(player),
        " ".join(map(str, legal)),
        " ".join(f"{r:g}" for r in returns),
        state.information_state_string(0),
        state.information_state_string(1),
    ]
    print("\t".join(fields))
    for action in legal:
        walk(state.child(action), history + [action])


walk(game.new_initial_state(), [])
