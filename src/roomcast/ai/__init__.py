"""Robots that listen and talk in rooms: speech in (VAD, ASR), speech out (TTS, a published voice),
and the LLM client. Vendor-neutral: the TRTC dialect maps its AI actions onto services/ai.py."""
