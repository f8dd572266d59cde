FROM python:3.13-slim
RUN pip install --no-cache-dir --upgrade pip && pip install --no-cache-dir flask==3.0.3 requests
RUN pip install --no-cache-dir -r requirements.txt
RUN python -m pip install --no-cache-dir gunicorn
USER app
