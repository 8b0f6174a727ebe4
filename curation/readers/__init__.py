"""File readers/extractors: HTML, PDF, DOCX, Markdown/TXT, JSONL/parquet dumps → datatrove Documents."""
