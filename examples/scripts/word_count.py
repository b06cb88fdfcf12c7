"""Counts the words of TEXT, and reports the count as JSON.

TEXT arrives as one argument, whatever it holds (spaces, quotes, `;`,
`$(...)`, a leading `--`): the registry never passes it through a shell.
"""

import json
import sys


def main() -> int:
    text = sys.argv[1]
    words = text.split()
    print(json.dumps({"words": len(words), "characters": len(text)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
