"""The explorer: `ablate explore`, an interactive page over a grid's trained variants.

This package owns turning kept weights (model.pt) into what the page shows, and the
page itself:
  choices.py    which variants of which grid the page compares, and its fixed prompts
  tokens.py     a prompt typed as text -> each task's model inputs, and token labels
  views.py      one model on one prompt: logits, attention at each stage, entropy
  positional.py what a variant's positional encoding is (matrix, angles, bias)
  pack.py       numbers -> compact base64 arrays the page decodes
  export.py     a grid's data file and the static site (results/explorer/)
  serve.py      `--serve`: the same page answering any prompt with the real models
  static/       the page: plain HTML, JS and CSS, no build step, nothing fetched
It reads the results store and the model core; it never imports training, grid or
Lightning, and report/ does not import it (REPORT.md only links the page).
"""
