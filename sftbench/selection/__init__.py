"""Model selection: transferability scores from frozen features, checked against fine-tunes (`sftbench rank`)."""
