"""FAISS reference indexes of image and DNA keys (built in a later step)."""
