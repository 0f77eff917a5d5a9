"""Reports: result tables (`tables`) and the self-contained HTML page (`html`)."""
